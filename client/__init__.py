"""Client helpers for maze-inference over the stock openai SDK (grows with the clients issue)."""
