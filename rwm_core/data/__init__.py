"""Dataset layer: the 66-column CSV format, validation, the contiguous array artifact and its window index."""
