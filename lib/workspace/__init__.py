"""The Databricks workspace: SDK clients, credentials, the token, where models are served.

``client`` builds every SDK client (explicit auth type, bounded retries) and
turns SDK errors into sentences; ``tokens`` keeps the workspace token and
whether it works; ``credentials`` picks the credential for model calls (the
token, else the app's service principal, else a Databricks CLI profile) and
gives fresh headers per call through the SDK's unified auth; ``profiles``
reads ``~/.databrickscfg`` and picks the CLI profile that applies; ``endpoints``
is the table of the wire APIs' base URLs (AI Gateway or serving endpoints)
and lists serving endpoints for the sidebar.

May import: ``lib.settings``, ``lib.homefiles`` and the databricks-sdk. Never
the terminal, access, agents or gateway layers.
"""
