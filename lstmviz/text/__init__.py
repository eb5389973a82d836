"""Text before any model: documents and vocabulary (corpus), documents laid into lanes,
and the text features a cell can be ranked against."""
