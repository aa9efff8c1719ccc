"""The ACR stand-in: ARM (registries, scope maps, tokens, generateCredentials) and each registry's login server."""
