"""Auth domain: users, their validation rules, refresh-token records and the ports the use cases need."""
