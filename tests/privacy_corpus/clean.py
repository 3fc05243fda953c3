# ruff: noqa: E501
"""Clean developer packets full of hard negatives: each function returns one random packet."""

from __future__ import annotations

import base64
import hashlib
import random
import uuid
from collections.abc import Callable

from tests.privacy_corpus.values import ALNUM, HEX, pick


def _sha(r: random.Random) -> str:
    return pick(r, HEX, 40)


def python_module(r: random.Random) -> str:
    return f'''"""Client for the billing service."""
import os

API_KEY = os.environ["BILLING_API_KEY"]
TOKEN = os.getenv("BILLING_TOKEN", "")
password = None
max_tokens = {r.randint(256, 8192)}
token_url = "https://auth.example.com/oauth/token"


def get_token(self) -> str:
    """Return the cached token."""
    return self._token


def login(user: str, password: str) -> bool:
    if not password:
        raise ValueError("password required")
    secret_name = "billing/{pick(r, "abcdefgh", 6)}"
    return check(user, password_hash(password), secret_name)
'''


def lockfile(r: random.Random) -> str:
    parts = []
    for name in r.sample(["react", "lodash", "zod", "vite", "esbuild", "typescript", "express"], 4):
        digest = base64.b64encode(hashlib.sha512(r.randbytes(16)).digest()).decode()
        parts.append(
            f'    "node_modules/{name}": {{\n      "version": "{r.randint(1, 9)}.{r.randint(0, 20)}.{r.randint(0, 9)}",\n'
            f'      "resolved": "https://registry.npmjs.org/{name}/-/{name}-1.0.0.tgz",\n      "integrity": "sha512-{digest}"\n    }}'
        )
    return '{\n  "lockfileVersion": 3,\n  "packages": {\n' + ",\n".join(parts) + "\n  }\n}\n"


def dockerfile(r: random.Random) -> str:
    digest = hashlib.sha256(r.randbytes(8)).hexdigest()
    return f"FROM python:3.11-slim@sha256:{digest}\nENV PIP_NO_CACHE_DIR=1\nARG API_KEY\nRUN --mount=type=secret,id=npmrc cat /run/secrets/npmrc\nEXPOSE 8080\n"


def git_log(r: random.Random) -> str:
    lines = []
    for _ in range(4):
        lines.append(
            f"commit {_sha(r)}\nAuthor: dependabot[bot] <49699333+dependabot[bot]@users.noreply.github.com>\n"
            f"Date:   Mon Mar {r.randint(1, 28)} 10:00:00 2025 +0000\n\n    Bump lodash from 4.17.20 to 4.17.21\n"
        )
    return "\n".join(lines)


def readme(r: random.Random) -> str:
    return """## Configuration

Set your credentials (these are the documented examples, not real keys):

    export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE
    export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
    export OPENAI_API_KEY=<API_KEY>
    export GITHUB_TOKEN=${GITHUB_TOKEN}

Write to support@example.com or call (555) 555-0100. Passwords are shown as `****`,
tokens in logs as [REDACTED]. Use `api_key: "your-api-key-here"` in config.yaml.
"""


def stripe_docs(r: random.Random) -> str:
    return (
        "Use test cards in test mode: 4242 4242 4242 4242 (Visa), 5555 5555 5555 4444 (Mastercard),\n"
        "3782 822463 10005 (Amex), 4000 0566 5566 5556 (debit). Any CVC, any future date.\n"
        f"Test key looks like sk_test_... and publishable pk_test_{pick(r, 'x', 3)}.\n"
    )


def nginx(r: random.Random) -> str:
    return (
        f"upstream app {{\n  server 10.0.{r.randint(0, 255)}.{r.randint(1, 254)}:8080;\n  server 192.168.1.{r.randint(1, 254)}:8080;\n}}\n"
        "server {\n  listen 0.0.0.0:443 ssl;\n  allow 127.0.0.1;\n  allow 203.0.113.0/24;\n  allow 2001:db8::/32;\n"
        "  proxy_set_header Authorization $http_authorization;\n  ssl_certificate /etc/ssl/certs/site.pem;\n"
        "  ssl_certificate_key /etc/ssl/private/site.key;\n}\n"
    )


def k8s_deploy(r: random.Random) -> str:
    return (
        "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - name: api\n"
        f"        image: ghcr.io/acme/api@sha256:{hashlib.sha256(r.randbytes(8)).hexdigest()}\n        env:\n"
        "        - name: DB_PASSWORD\n          valueFrom:\n            secretKeyRef:\n              name: db-credentials\n"
        '              key: password\n        - name: API_TOKEN\n          value: "{{ .Values.apiToken }}"\n'
    )


def terraform_vars(r: random.Random) -> str:
    return (
        'resource "aws_db_instance" "main" {\n  username = var.db_username\n  password = var.db_password\n'
        f'  kms_key_id = aws_kms_key.db.arn\n  tags = {{ Name = "db-{r.randint(1, 99)}" }}\n}}\n'
        'variable "db_password" {\n  type      = string\n  sensitive = true\n}\n'
    )


def env_example(r: random.Random) -> str:
    return "DATABASE_URL=postgres://user:password@localhost:5432/app\nSECRET_KEY=changeme\nAPI_TOKEN=\nSTRIPE_KEY=sk_live_xxxxxxxxxxxxxxxxxxxx\nSMTP_PASSWORD=<your-smtp-password>\n"


def app_log(r: random.Random) -> str:
    lines = []
    for i in range(12):
        lines.append(
            f"2025-03-01T10:{i:02d}:{r.randint(10, 59)}.{r.randint(100, 999)}Z INFO trace_id={pick(r, HEX, 32)} "
            f"span={pick(r, HEX, 16)} req={uuid.UUID(int=r.getrandbits(128))} GET /api/v1/items/{r.randint(1, 99999)} "
            f"200 {r.randint(1, 900)}ms bytes={r.randint(100, 99999)} client=10.1.{r.randint(0, 255)}.{r.randint(1, 254)}"
        )
    return "\n".join(lines) + "\n"


def minified_js(r: random.Random) -> str:
    body = ";".join(
        f"function {pick(r, 'abcdefghij', 2)}({pick(r, 'abcxyz', 1)}){{return {pick(r, 'abcxyz', 1)}.{pick(r, ALNUM, 6)}({r.randint(0, 99999)})}}"
        for _ in range(60)
    )
    return (
        f"!function(){{'use strict';var t={{key:'{pick(r, 'abcdef', 8)}',token:null}};{body}}}();\n"
    )


def data_uri(r: random.Random) -> str:
    png = base64.b64encode(r.randbytes(300)).decode()
    return f'<img alt="logo" src="data:image/png;base64,{png}">\n<link rel="icon" href="data:image/svg+xml;base64,{base64.b64encode(r.randbytes(120)).decode()}">\n'


def certificate(r: random.Random) -> str:
    body = "\n".join(pick(r, ALNUM + "+/", 64) for _ in range(8))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n-----BEGIN PUBLIC KEY-----\n{body[:200]}\n-----END PUBLIC KEY-----\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{pick(r, ALNUM, 43)} deploy@ci\n"


def metrics_csv(r: random.Random) -> str:
    rows = [
        f"2025-03-{d:02d},{r.randint(1000, 99999)},{r.random():.4f},{r.randint(100, 999)}"
        for d in range(1, 15)
    ]
    return "date,requests,error_rate,p95_ms\n" + "\n".join(rows) + "\n"


def sql_schema(r: random.Random) -> str:
    return (
        "CREATE TABLE users (\n  id BIGSERIAL PRIMARY KEY,\n  email TEXT NOT NULL UNIQUE,\n  password_hash TEXT NOT NULL,\n"
        "  phone TEXT,\n  created_at TIMESTAMPTZ DEFAULT now()\n);\nCREATE INDEX users_email_idx ON users (email);\n"
        f"SELECT id, email FROM users WHERE id = {r.randint(1, 9999)} AND created_at > '2025-01-01';\n"
    )


def go_code(r: random.Random) -> str:
    return (
        'package auth\n\nimport "os"\n\ntype Config struct {\n\tAPIKey   string `json:"api_key"`\n\tToken    string `env:"TOKEN"`\n}\n\n'
        'func Load() Config {\n\treturn Config{APIKey: os.Getenv("API_KEY"), Token: os.Getenv("TOKEN")}\n}\n'
        f"// build {_sha(r)[:12]} uuid {uuid.UUID(int=r.getrandbits(128))}\n"
    )


def requirements(r: random.Random) -> str:
    return (
        "\n".join(
            f"{name}=={r.randint(1, 9)}.{r.randint(0, 30)}.{r.randint(0, 9)} \\\n    --hash=sha256:{hashlib.sha256(r.randbytes(8)).hexdigest()}"
            for name in ("httpx", "pydantic", "anyio", "click")
        )
        + "\n"
    )


def ts_code(r: random.Random) -> str:
    return (
        "export async function call(apiKey: string, token?: string) {\n  const headers = { Authorization: `Bearer ${token}` };\n"
        "  const res = await fetch(`${BASE}/v1/run?key=${apiKey}`, { headers });\n  if (res.status === 401) throw new Error('invalid api key');\n"
        f"  return res.json();\n}}\nconst VERSION = '{r.randint(1, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}';\nconst phone = '+1 (555) 010-{r.randint(1000, 9999)}';\n"
    )


CLEAN: list[Callable[[random.Random], str]] = [
    python_module,
    lockfile,
    dockerfile,
    git_log,
    readme,
    stripe_docs,
    nginx,
    k8s_deploy,
    terraform_vars,
    env_example,
    app_log,
    minified_js,
    data_uri,
    certificate,
    metrics_csv,
    sql_schema,
    go_code,
    requirements,
    ts_code,
]
