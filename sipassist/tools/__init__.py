"""sipassist.tools: the tool registry and one module per tool."""
