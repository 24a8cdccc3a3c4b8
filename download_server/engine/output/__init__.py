"""Finished output: the MP4 of an HLS recording and the thumbnail of every video record."""
