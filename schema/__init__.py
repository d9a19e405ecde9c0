"""The GraphQL surface: types, inputs, error types, the roots and the Schema object."""
