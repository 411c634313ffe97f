"""Getting rows into Bronze: the COPY loader and its ledger; connectors/ build on it."""
