"""The mail domain: addresses and routing, mailboxes, messages, delivery."""
