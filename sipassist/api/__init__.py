"""sipassist.api: the REST API, one module per resource."""
