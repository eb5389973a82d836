"""Text before any model: documents and vocabulary (corpus), documents laid into lanes and
the one loop that runs a model over them (lanes), and the text features a cell can be
ranked against."""
