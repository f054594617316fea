"""The domain: plain functions over the session, shared by views, CLI and API.

Services take the acting user and the time as arguments, flush but never commit (the caller
commits once), and raise `app.services.errors.DomainError` for anything a user can fix.
"""
