"""The Databricks workspace: the one ``WorkspaceClient`` factory, the token, endpoint names.

``client`` builds every SDK client (explicit auth type, bounded retries) and
turns SDK errors into sentences; ``tokens`` keeps the workspace token and
whether it works; ``endpoints`` lists serving endpoints for the sidebar.

May import: ``lib.settings`` and the databricks-sdk. Never the terminal,
access or agents layers.
"""
