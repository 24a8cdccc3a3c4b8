"""The mediadl download server: authenticated download tasks, the engine that runs them, progress streams."""
