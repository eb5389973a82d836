"""Pictures of a store: colour scales, figures and painted text, exports, the static
report and the LSTMVis project."""
