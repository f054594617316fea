"""Cross-cutting web helpers: access control, errors, i18n, template filters."""
