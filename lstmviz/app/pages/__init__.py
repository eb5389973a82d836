"""The dashboard's pages, one module each: layout, callbacks and view state together."""
