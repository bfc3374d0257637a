"""HTTP routes: thin functions that parse, call and respond."""
