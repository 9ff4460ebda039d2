"""The Kleis store: Peewee models, schema migrations, encrypted tokens, client keys, accounts."""
