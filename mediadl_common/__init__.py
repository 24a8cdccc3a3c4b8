"""Code both mediadl servers (and the client) share: config, errors, tokens, database, logging, serving."""
