"""Recording a model's series into a store, and the cached recordings the app and the
command line ask for."""
