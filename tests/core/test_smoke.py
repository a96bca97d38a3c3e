from enclave.core.principal import Principal
from enclave.services import Services


async def test_two_tenants_fixture(services: Services, two_tenants: dict[str, Principal]) -> None:
    users = await services.users.list_users(two_tenants["alice"], "acme")
    assert [u.email for u in users] == [
        "alice@acme.example",
        "bob@acme.example",
        "carol@acme.example",
    ]
