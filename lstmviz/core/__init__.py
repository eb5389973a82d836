"""The foundation every room stands on: errors, atomic writes, neuron ids, the characters
shown for text, and the thread policy. Imports nothing else of lstmviz."""
