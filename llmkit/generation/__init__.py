"""Text generation: batched left-padded, streaming and speculative (rank 5: models only)."""
