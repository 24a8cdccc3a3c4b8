"""The download engine: scheduler, HLS/MP4/image jobs, fetching, decryption, local playlists, URL policy."""
