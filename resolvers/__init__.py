"""Thin resolvers: read the context, authorise, call one service, return domain values."""
