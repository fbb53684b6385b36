"""Model backends: something that turns prompts into completions."""
