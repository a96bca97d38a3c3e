"""IMAP front end: a pure wire layer (``wire/``) and an asyncio session over the mail store."""
