"""Who may call the API: bearer tokens, their scopes, and the audit trail of what they did."""
