from tests.support.live_server import LiveServer


async def test_typename_over_http(server: LiveServer) -> None:
    # covers: OPS-1
    assert await server.graphql("{ __typename }") == {"data": {"__typename": "Query"}}


async def test_me(server: LiveServer, owner) -> None:
    _user, token = owner
    result = await server.graphql("{ me { email timezone personalEmailAccess } }", token=token)
    assert result == {
        "data": {"me": {"email": "owner@example.com", "timezone": "Europe/Helsinki", "personalEmailAccess": False}}
    }
