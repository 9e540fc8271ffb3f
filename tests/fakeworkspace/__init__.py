"""A fake Databricks workspace for tests: a real HTTP server on 127.0.0.1.

The real databricks-sdk, the coding-agent CLIs and the app (as a subprocess)
talk to it over HTTP, so tests exercise the same requests production sends.

    from tests.fakeworkspace import FakeWorkspace

    with FakeWorkspace(owner_email="Owner.Person@example.com", app_name="coda-app",
                       client_id="sp-client-id", client_secret="sp-secret") as fw:
        w = fw.workspace_client(auth_type="oauth-m2m")   # or build your own Config(host=fw.url, ...)
        assert w.apps.get("coda-app").creator == fw.owner_email

or the pytest fixture ``fake_workspace`` from ``tests.fakeworkspace.fixtures``.

Public API of :class:`FakeWorkspace` (details in server.py):

lifecycle   ``start()``, ``stop()`` (then connections are refused; ``start()``
            again reuses the port), context manager, ``url``
            (``http://127.0.0.1:PORT``), ``host_without_scheme``, ``port``
identity    ``owner_email``, ``app_name``, ``client_id``, ``client_secret``,
            ``workspace_id``, ``app_creator`` (settable; None -> apps.get 404)
tokens      ``create_token(user=None, lifetime_s=None, comment="") -> "dapi..."``,
            ``create_oauth_token()``, ``revoke_token(t)``, ``expire_token(t)``,
            ``revoke_oauth_tokens()``, ``tokens``, ``oauth_token_lifetime_s``
files       ``files`` ({path: bytes} snapshot, canonical ``/Users/...`` paths),
            ``directories``, ``read_file(p)``, ``list_dir(p)``, ``exists(p)``,
            ``get_status(p)``, ``mkdirs(p)``, ``put_file(p, data)``
faults      ``set_fault(mode, *, paths=None, count=None, delay_s=0, status=None,
            retry_after=None)`` with mode in {"down","slow","5xx","429",None},
            ``add_fault(...)``, ``clear_faults()``, ``fault_hits``
records     ``requests`` (RecordedRequest: method, path, query, headers, body),
            ``model_requests`` (ModelRequest: api, path, query, headers, json,
            model, stream), ``model_tool_calls`` (ToolCall: api, call_id,
            name, arguments), ``model_tool_results`` (ToolResult: api,
            call_id, output, is_error), ``clear_requests()``
models      ``model_reply``, ``model_tool_command`` (answer with one shell
            tool call first), ``model_tool_arguments`` (extra arguments where
            the tool's schema has them), ``serving_endpoints``, ``strict_models``,
            ``model_chunk_delay_s``, ``model_usage`` (ModelUsage: api, model,
            input_tokens, output_tokens: what each answer reported),
            ``model_reject_empty_text`` (400 for empty text blocks, as
            Databricks), ``model_denied_endpoints`` (403 PERMISSION_DENIED)
helpers     ``app_env(token=None)`` (Databricks Apps variables for a
            subprocess), ``workspace_client(auth_type="pat"|"oauth-m2m", ...)``

HTTP surface: ``/.well-known/databricks-config``, ``/oidc/...`` (discovery,
client-credentials token), ``/api/2.0/apps[/{name}]``,
``/api/2.0/preview/scim/v2/Me``, ``/api/2.0/token/{create,list,delete}``,
``/api/2.0/workspace/{mkdirs,import,get-status,list,delete,export}``,
``/api/2.0/serving-endpoints[/{name}]`` and the model APIs listed in
models.py, under both ``/serving-endpoints/...`` and gateway paths.
"""

from .faults import FaultRule
from .server import FakeWorkspace
from .state import FaultHit, ModelRequest, ModelUsage, RecordedRequest, TokenRecord, ToolCall, ToolResult

__all__ = ["FakeWorkspace", "FaultRule", "FaultHit", "ModelRequest", "ModelUsage", "RecordedRequest", "TokenRecord",
           "ToolCall", "ToolResult"]
