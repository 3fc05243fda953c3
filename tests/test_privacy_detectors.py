# ruff: noqa: E501
"""Table tests for the detectors: each row a value in a container, or a hard negative."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from offload_mcp.privacy import scan
from offload_mcp.privacy.checks import is_placeholder

# (container with {v}, value, category); values are random strings in real formats.
POSITIVES = [
    ("aws_access_key_id = {v}", "AKIAZ3MQ7LB2XK4R9T2Q", "secret"),
    ("export GITHUB_TOKEN={v}", "ghp_" + "x7Kq9ZrT2mVbN4pL8sWc1yHd5jFa3gEu6oRi", "secret"),
    (
        "token: {v}",
        "github_pat_11AQZRT7Y0"
        + "aZ9xQ2rT5vB8nM1kL4jH7g_"
        + "Qw3eR6tY9uI2oP5aS8dF1gH4jK7lZ0xC3vB6nM9qW2eR5tY8uI1oP4aS7dF0gH3jK6lZ9xC2v",
        "secret",
    ),
    ("gitlab: {v}", "glpat-" + "Xy7Zq2Rt9Vb4Nm1Kl8Jh", "secret"),
    ('SLACK_BOT = "{v}"', "xoxb-2345678901-3456789012345-" + "AbCdEfGhIjKlMnOpQrStUvWx", "secret"),
    (
        "hook {v} done",
        "https://hooks.slack.com/services/T01AB2CD3EF/B04GH5IJ6KL/" + "q8RsT9uVwX0yZa1Bc2De3Fg4",
        "secret",
    ),
    ("stripe.api_key = '{v}'", "sk_live_" + "51HxQ2eLkT9vZ8rB4nM7yW3pA6sD", "secret"),
    ("secret: {v}", "whsec_" + "Q2w3E4r5T6y7U8i9O0pAsDfGhJkL", "secret"),
    (
        "OPENAI_API_KEY={v}",
        "sk-proj-" + "Ab3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6kM9nP2qS5tV8w",
        "secret",
    ),
    (
        "client = Anthropic(api_key='{v}')",
        "sk-ant-api03-"
        + "Xq9ZrT2mVbN4pL8sWc1yHd5jFa3gEu6oRiK7lM0nB2vC4xZ6aS8dF0gH2jK4lQ6wE8rT0yU2iO4pA6sD8fG0hJ2kL4zX6cV8bN0mQ-AA",
        "secret",
    ),
    ("key={v}&q=x", "AIza" + "SyD4x9ZqT2rV8bN1mK5lJ7hG3fD6sA0pQ2w", "secret"),
    (
        "SENDGRID={v}",
        "SG." + "aB3dE6gH9jK2mN5pQ8sT1v" + "." + "W4yZ7bC0eF3hJ6kM9nP2qS5tV8wX1zA4cD7fG0iJ3lO",
        "secret",
    ),
    (
        "//registry.npmjs.org/:_authToken={v}",
        "npm_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
        "secret",
    ),
    (
        "password = {v}",
        "pypi-AgEIcHlwaS5vcmc" + "CJDk4NzY1NDMyLWFiY2QtNDEyMy04NTY3LTg5MGFiY2RlZjAxMgACKlsz",
        "secret",
    ),
    ("HF_TOKEN={v}", "hf_" + "aBcDeFgHiJkLmNoPqRsTuVwXyZ8q2w7e5r", "secret"),
    (
        "bot.run('{v}')",
        "MTA4NzY1NDMyMTA5ODc2NTQz" + ".GhT5xZ." + "q8RsT9uVwX0yZa1Bc2De3Fg4Hi5Jk6LmNo7",
        "secret",
    ),
    (
        "https://api.telegram.org/bot{v}/getMe",
        "7394028517:" + "AAHq8RsT9uVwX0yZa1Bc2De3Fg4Hi5Jk6Lm",
        "secret",
    ),
    (
        "Authorization: Bearer {v}",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJlLXZhbHVlLTEyMw",
        "secret",
    ),
    ("DATABASE_URL={v}", "postgres://app:Zq8%21rT2vLm@db.internal:5432/app", "secret"),
    ("curl -H 'X-API-Key: {v}' https://x", "k7Zq2Rt9Vb4Nm1Kl8Jh3Gf6Ds", "secret"),
    ('{{"db_password": "{v}"}}', "Xk9#mP2$vLq7", "secret"),
    ("<password>{v}</password>", "Hy6!tR3@pW9z", "secret"),
    ('resource "x" {{\n  master_password = "{v}"\n}}', "Tf4$gH7*jK2q", "secret"),
    ("my password is {v} btw", "Qm3@vN8#xZ1r", "secret"),
    (
        "AccountKey in: {v}",
        "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey="
        + "q8RsT9uVwX0yZa1Bc2De3Fg4Hi5Jk6LmNo7Pq8Rs9Tu0Vw1Xy2Za3Bc4De5Fg6Hi7Jk8Lm9No0Pq1Rs2Tu3Vw4==;EndpointSuffix=core.windows.net",
        "secret",
    ),
    (
        "key:\n{v}\n",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nQyNTUxOQAAACBaXm7Ll3Q0vEpbQhzZ9mQ2rT5vB8nM1kL4jH7gF0dS3aAAAAJgAAAAA\n-----END OPENSSH PRIVATE KEY-----",
        "secret",
    ),
    ("contact {v} today", "maria.gonzalez84@gmail.com", "pii"),
    ("call {v}", "(415) 867-5309", "pii"),
    ("tel: {v}", "+44 7911 123456", "pii"),
    ("SSN {v}", "536-22-8812", "pii"),
    ("card {v} exp", "4539 1488 0343 6467", "pii"),
    ("IBAN: {v}", "DE75512108001245126199", "pii"),
    ("client ip {v} -", "81.2.69.142", "pii"),
    ("ship to {v}", "4821 Oak Hollow Drive, Springfield, IL 62704", "pii"),
    ("dob: {v}", "1984-03-12", "pii"),
    ("Patient: {v}\nDiagnosis: type 2 diabetes", "Maria Gonzalez", "phi"),
    ("MRN: {v} admitted", "00482913", "phi"),
    ("export PGPASSWORD='{v}'", "Vq8#pLm2!xRz", "secret"),  # a name written as one word
    ("$ mysql -u root -p{v} prod", "Rq7zK2mP9xW", "secret"),
    ("define('TWILIO_AUTH_TOKEN', '{v}');", "8560a6eb3f2c41d9b7e0a5c6d8f91b2e", "secret"),
    (
        'const AWS_SECRET_ACCESS_KEY: &str = "{v}";',
        "Jx8Kq2mVn5Lp9Wz3Rt6Yb1Hc4Fd7Gs0Ae2Iu5Oy8",
        "secret",
    ),
    ('db_password: str = "{v}"', "Rq7zK2mP9xW", "secret"),
    ("smtp_password={v}", "&IkxQ!QIJZ5m1$7wo", "secret"),
    ("proxy_set_header X-API-Key {v};", "nEma9ZQZ3kLm8Vq2Rt5Yw", "secret"),
    ("REDIS_URL=redis://:{v}@cache.internal:6379/0", "tundra-quartz-ember76%23", "secret"),
    (
        "fetch(url, {{ headers: {{ Authorization: `Basic {v}` }} }});",
        "YXBwOlM3SnpuRDlob1B4ZGJ0bXlsVQ==",
        "secret",
    ),
    (
        '{{"auths": {{"registry.io": {{"auth": "{v}"}}}}}}',
        "c3ZjX2FwaTpvMDNibXJjZC5SZWNaaEs0",
        "secret",
    ),
    ('{{"key": "twilioAuthToken", "value": "{v}"}}', "067c54c11c8e71dde1c6dd0f74222b21", "secret"),
    ('env:\n  - name: REDIS_PASSWORD\n    value: "{v}"', "davza9ACPvQMY!7Jk^BUE", "secret"),
    (
        "machine api.example.io\n  login deploy\n  password {v}\n",
        "lEdWf5BAg7YOVscYRn2d5LcNlJzupF6GpxD7vVPL",
        "secret",
    ),
    ("*:*:*:replicator:{v}\n", "Sqb9Uh_WcimRag", "secret"),
    ("<password>{v}</password>", "VeajytLPJPMFhH.gjIm", "secret"),  # random case, not a name
    ("password = {v}", "FDtwGJCGSXGyZy", "secret"),
    ("[database]\npasswd = {v}\n", "igN8mrrR9z5xkqHLS.juA", "secret"),
    (
        "$ kubectl get secret db -o jsonpath='{{.data.password}}' | base64 -d\n{v}\n",
        "tundra!tundra9285%",
        "secret",
    ),
    # Chat: the value on its own lines after "is:", or in a code span after the question.
    (
        "the twilio auth token is:\n\n    {v}\n\nThanks",
        "cb77349ebbe7bac04cebf923b51bdb47",
        "secret",
    ),
    (
        "> anyone have the smtp password?\n\nSure, use `{v}` for now.",
        "ember-tundra-falcon92!",
        "secret",
    ),
    ("> anyone have the passwd?\n\nSure, use `{v}` for now.", "FDTVpumkyf814!", "secret"),
    (
        "the password? use `{v}`",
        "3e5c437fbfeab93ac55cbc9d690869c0d3c849c0591a9b62e202598cc423d1a7",
        "secret",
    ),
    (
        "AuthError: rejected '{v}'",
        "sk-svcacct-5W80vpgCph9VvD-h17VJwA_C7RBpwwgm3nyZCZj3V4-w_Q",
        "secret",
    ),
    ("You can reach me at {v} during the day.", "312 125 5923", "pii"),  # an Italian mobile
    ("Contact: {v}", "030 901820", "pii"),  # national notations, after a phone label only
    ("Call me on {v} tonight", "06 12 34 56 78", "pii"),
    ("mobile: {v}", "07911 123456", "pii"),
    ("reach me at {v}", "4158672391", "pii"),
    ("You can reach me at {v} during the day.", "8120 3957", "pii"),  # Singapore, no trunk 0
    ('"phone": "{v}",', "612 35 56 85", "pii"),  # Spain
    ('"phone": "{v}",', "06 12846543", "pii"),  # the Netherlands
    ("birthday {v}", "1985/03/12", "pii"),
    ("born on the {v}", "12th of March 1985", "pii"),
    ("Address: {v}", "10 Downing Street, London SW1A 2AA", "pii"),
    ("office {v}", "350 Bay Street, Toronto, ON M5H 2S6", "pii"),
    ("lives at {v}", "4821 Oak Hollow Dr., Apt 3B, Austin, TX", "pii"),
    ("Home address:    {v}", "14 rue de la Paix", "pii"),  # addresses after a label
    ("my address for the package: {v}", "Hauptstraße 51", "pii"),
    ("Mailing address: {v}", "Flat 2, 18 Rue de Rivoli, 75004 Paris", "pii"),
    ("Date of birth (verified): {v}", "14 Feb 1991", "pii"),
    ("payroll: SSN {v}, born", "087935928", "pii"),
    ("my birthday is {v}", "03/14/1962", "pii"),
    ("ship to {v}", "1603 N Willow Creek Drive, Austin, TX 78745", "pii"),
    ("'date_of_birth' => '{v}',", "06.11.1964", "pii"),
    ('pub const BIRTH_DATE: &str = "{v}";', "09.12.1951", "pii"),
    ("- `birth_date`: `{v}`", "July 24, 1984", "pii"),
    ("DB_PASSWORD ?= {v}", "u6TmEL235aZs3*GXUM29", "secret"),
    ("- `app_secret`: `{v}`", "Evm0T6NqX2pL9vR4tY7wB1", "secret"),
    ("the Authorization you asked for: Basic {v}", "amVua2luczpTM2NyM3RQYXNz", "secret"),
    ("- `X-API-Key`: `{v}`", "LYFh8Kq2mVn5Lp9Wz3Rt6Yb", "secret"),
    ("ok use AWS_SECRET_ACCESS_KEY {v} then", "YlAYtlNf2mVn5Lp9Wz3Rt6Yb1Hc4Fd7Gs0Ae2Iu5", "secret"),
    (
        "here's the Private-Token you asked for: {v}.",
        "v7UvkVo0Faz8csJBasj7UiOzaBFNSjmThuOFBWeuwn1",
        "secret",
    ),
    (
        'id,status,api_token,notes\n1182,active,"{v}",imported\n',
        "0ZKG5pqr0uTD6aKIsxwZ1JpdWA16SUQ",
        "secret",
    ),
    ("[10:42] dev-ops: here's the app secret for staging: {v}", "gDwUX.V1AYfCa5b6", "secret"),
    ("<patient><date_of_birth>{v}</date_of_birth></patient>", "02/13/1938", "pii"),
    (
        "ENV SENTRY_DSN=https://{v}@o123456.ingest.sentry.io/4504",
        "0edd0fa82b23b0bb507b24606309b074",
        "secret",
    ),
    ("$Password = ConvertTo-SecureString '{v}' -AsPlainText -Force", "orbit!848Quartzw", "secret"),
    ("$ redis-cli -h cache.acme.io -a {v} ping", "orbit~Falcon2438", "secret"),
    ("my password for the staging db is {v} if you need it", "Tango8945Pixel!yOlT", "secret"),
    ("conn = database('clinic','analyst','{v}');", "5979Tangovelvet*", "secret"),
    ("password => postgresql_password('inventory', '{v}'),", "%CobaltTango382MCap", "secret"),
    ('encrypt = "{v}"', "F2Di3Zyy27QBphG10FVW9Ge9CJ6hozS9CAYVK8j", "secret"),
    ("export TF_VAR_db_password={v}", "2130_harborriver", "secret"),
    ("      password: {v}", "velvetorbit&2393SY", "secret"),
    ("password={v}\nlogging.level.root=INFO", "d*q#PNd&8uw!nm&M21Nyj=AG#cuv", "secret"),
    ("<password>{v}</password>", "$Tango8945PixelX", "secret"),
    ("AGENT: and the date of birth?\nCALLER: {v}\n", "May 19, 1953", "pii"),
    ("sqlplus reporting/{v}@//ora-prod.internal:1521/ORCLPDB1", "Bn56xkC4LR7j1oymncS1", "secret"),
    ("$ pulumi config set --secret dbPassword {v}", "yIIORizaQzgTa3", "secret"),
    (
        "SENTRY_AUTH\t{v}\tno",
        "1347120363c2b310653f610d382729bd51e13c68bf56155a83e50fd9bc840e2a",
        "secret",
    ),
    ("| CONTENTFUL_TOKEN   | {v} |", "SwbDUjsAaApaLVdDsx6o9SHqdAUQ8LLPxknNuWsqCOF", "secret"),
    (
        "define('SECURE_AUTH_KEY', '{v}');",
        "y);;.fC4~#0r(*ezK)AHh$U?KXqey>MA5Laf23(?b?v:nU1DIZ#T",
        "secret",
    ),
    (
        "use this header: Bearer {v} for staging",
        "9f8e7d6c5b4a39281706f5e4d3c2b1a0f1e2d3c4",
        "secret",
    ),
    ("pt is 62 y/o female, hx of breast cancer, MRN#: {v}", "00482913", "phi"),
    ("Callback number: {v}", "02 1221 6942", "pii"),
    ("Customer (phone {v}) says", "(11) 96150-1674", "pii"),
    ("q=You+can+reach+me+on+{v}+or+at+my+work+address", "904.416.9675", "pii"),  # form encoding
    ("email: {v}", "John.O'Brien+news@mail.co.uk", "pii"),
    # Clinical notes without the word "patient": the clinical terms alone give the context.
    ("Pt: {v}, DOB 03/14/1962. Assessment: type 2 diabetes", "Maria Gonzalez", "phi"),
    ("Pt: Maria Gonzalez, DOB {v}. Assessment: type 2 diabetes", "03/14/1962", "phi"),
    ("the patient, {v}, reports nausea after chemo; MRN: A7734921", "Sarah Lee", "phi"),
    ("Claim 88213: member {v}, dx code E11.9, copay $20", "Alice Walker", "phi"),
    ("MSH|^~\\&|EPIC|HOSP\rPID|1||{v}^^^HOSP^MR||QUILL^ADA", "48213377", "phi"),
]

NEGATIVES = [
    "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "password = ${DB_PASSWORD}",
    "api_key = os.environ['OPENAI_API_KEY']",
    'token: "<API_KEY>"',
    "password: ****",
    "secret: [REDACTED]",
    "card 4242 4242 4242 4242",
    "commit 3f9a1c2e8b7d6f5a4c3b2a1908f7e6d5c4b3a291",
    'integrity "sha512-Zx8kP2mQ7vR9tL4bN6cY1wE3uI5oA0sD2fG4hJ6kL8zX0cV2bN4mQ6wE8rT0yU2iO4pA6sD8fG0hJ2kL4zX6cV8b=="',
    "image@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "id 123e4567-e89b-12d3-a456-426614174000",
    "server 10.0.0.12 and 192.168.1.20 and 203.0.113.9",
    "mail jane@example.com",
    "call 555-0142 or (212) 555-0199",
    "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo\n-----END PUBLIC KEY-----",
    "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ\n-----END CERTIFICATE-----",
    "token_url = 'https://oauth2.googleapis.com/token'",
    "max_tokens = 4096",
    "password_hash = bcrypt.hash(password)",
    "def get_token(self) -> str:\n    return self._token",
    'img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="',
    "version 1.2.3.4 released",
    "upstream dns 8.8.8.8, 1.1.1.1 and 2606:4700:4700::1111",  # public resolvers
    "DATABASE_URL=postgres://postgres:postgres@localhost:5432/app_dev",  # an image's default
    'card_number = "4242424242424242"  # Stripe test card in a key-value field',
    "mobile: 07700 900123 (Ofcom's drama range)",
    "GITHUB_TOKEN=\nSENTRY_DSN=\nSTRIPE_SECRET_KEY=<STRIPE_SECRET_KEY>\nOPENAI_API_KEY=${OPENAI_API_KEY}",
    "DATABASE_URL=postgres://app:<password>@localhost:5432/app",
    'stripe.api_key = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"  # Stripe\'s documented key',
    "146953,eu-west-1,499364881286108508",  # an 18-digit ID that passes Luhn
    "see http://:8080@host and redis://:@localhost:6379",
    "curl https://api.stripe.com/v1/charges -u sk_test_4eC39HqLyjWDarjtT1zdp7dc: -d amount=2000",
    "INFO discord_msg=5544816313545003538 status=ok",  # a 19-digit ID
    '"address": {"line1": "510 Townsend St", "city": "San Francisco"}',  # Stripe's test data
    "password = settings.DB_PASSWORD\ntoken = self._token\nkey = Keys.ControlJ",
    "RegEnumKey = win32api.RegEnumKey",
    'export API_KEY="${API_KEY:?missing}"\nSTRIPE_SECRET_KEY=sk_live_...',
    '- name: PASSWORD\n  value: "%(DB_PASS)s"',
    "| API_TOKEN | Your API token from the dashboard |\n| SECRET_KEY | `xxxxxxxx` |",
    "token = get_token(user, scope)\npassword = hash_password(raw)\nBASIC_AUTH=true",
    "pulumi config set aws:region us-east-1",
    '<add key="Password" value="%DB_PASSWORD%" />',
    "snmpwalk -v2c -c public host 1.3.6.1.4.1.2021.10.1.3",
    'encrypt = "AES256"\npassword=$HOME and secret = $db_secret and pw: $DbPassword',
    "The password field is required; the token count is 4096; the secret is stored in Vault.",
    "df = database('sales')  # and database(name, user, password)",
    '"AWS::Route53::KeySigningKey": "a9a67ae6c371fcf4",\n"AWS::Config::AggregationAuthorization": "af318b77aa"',
    "polarizability 1.648 777 2731 e-41 and 2.293 712 278 3963",
    'ObjectIdentifier("2.5.4.45"), rfc7518#section-4.7.1.1, "2.2.2.2": 0.25, requires ~= 1.4.5.0',
    "assert ellipe(-pi).ae(2.4535865983838923); rng = np.random.default_rng(235889269872456)",
    'elif token == OUTPUT:\n    f(password=password,\n      trust_password=trust_password,)\nToken.String: "#AB0909",',
    "# Foundation, Inc., 51 Franklin St, Fifth Floor, Boston, MA 02110-1301 USA",
    "Copyright (c) 2008-2017 Oak Ridge National Laboratory",
    "e.g. `user` in `https://user:pass@host:port/path?query#fragment`",
    "electron mag. mom. ratio  -658.227 5971 and 206.766 9883",
    "coefficients: 14633730048000000*t**14 + 4828147466240000*t**12",
    "_SAR_SEMVER_KEY = \"serverlessrepo:semanticVersion\"\ndest_key='Ec2KeyName'",
    "    private_key: PKCS7PrivateKeyTypes,\n    f(s3_session_auth=s3_session_auth)",
    '_SK_START = b"-----BEGIN OPENSSH PRIVATE KEY-----"\n_SK_END = b"-----END OPENSSH PRIVATE KEY-----"',
    "# -----BEGIN PRIVATE KEY-----\n# ...\n# -----END PRIVATE KEY-----",
    "credentials = '{0}:{1}'.format(user, pw); token_range = \"%d,%d-%d,%d:\"",
    'self.update_token = "1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d"; "SessionToken": "ABC12345"',
    '{"username": "admin", "password": "P@55w0rd!"}; authorization = base64.decodebytes(x)',
    "`Authorization: AWS4-HMAC-SHA256 Credential=...`",
    "mass ratio  1838.683 6605 and 483 597.8525; Monthly 77, 259-264 1970",
    "- OpenSSL 3.0.13.1",
    "the password for the database: see vault; token: required",
    "call +61 2 5550 1234 or +61 3 7010 4321 (ACMA's ranges for fiction)",
    "the token expiry: 3600; password reset: see docs; API key rotation policy: every 90 days",
    "use the token endpoint https://auth.example.com/token, use key_file path/to/key.pem",
    "name,password_hash,token_count,api_key\nalice,$2b$12$abcdefghijk,42,<API_KEY>",
    "def f(self, token, secret):\n    return g(token, secret)",
    '    {"Cidr": "70.132.0.0/16"}, ssn : 111-22-3333 (the docs\' example)',
    '{"resourceType": "Patient", "name": [{"family": "Test"}], "birthDate": "1900-01-01"}',
    "default DOB 1970-01-01 for imported rows; ssn 555-44-4444 in HL7's sample message",
    "send `Authorization: Bearer <token>` or Bearer ${TOKEN}; Bearer YOUR_ACCESS_TOKEN_HERE",
    "$ kubectl get secret db -o jsonpath='{.data.username}' | base64 -d\napp_reporting_user\n",
    'fields = ["password", "confirm_password"]',
    "The token fix landed in `9fceb02d0ae598e95dc970b74767f19372d61af8`.",
    "If that's your intention, pass `allow_module_level=True` to skip.",
    "It's passed a :class:`~jinja2.lexer.TokenStream` of the template.",
    "logger.debug('Unable to decrypt PasswordData', exc_info=True)",
    "names = ['gss_krb5_lucid_key', 'gss_krb5_rfc1964_keydata']",
    '"SessionToken": "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQW"',
    "phone: 0123456789, tel: 1234567890",
    "the loop calls 2 times; see 0 1 2 3",
    "Call 2024-01-05 at noon; phone 1.5 GB; fax 100 200; call 12345678",
    "ship to: 3 days; the billing address is stored in the Customer model",
    'const stripe = Stripe("pk_live_51H8x2KJd8sJ2kLmN3oP4qR5sT6uV7wX8yZ9");',
    'stripe_publishable_key = "pk_test_TYooMQauvdEDq54NiTphI7jx"',
    '"AWS::Connect::PhoneNumber": "379361843",',  # a bare digit run in a phone field
    'def json_compatible_key(key: str) -> str:\n    """As defined in :pep:`566#json-compatible-metadata`"""',
    'headers = {"Authorization": f"Bearer {token}"}',
]


@pytest.mark.parametrize(("container", "value", "category"), POSITIVES)
def test_finds_whole_value(container: str, value: str, category: str) -> None:
    text = container.format(v=value)
    start = text.index(value)
    end = start + len(value)
    found = [f for f in scan(text) if f.category == category]
    assert any(f.start <= start and f.end >= end for f in found), (text, found)


@pytest.mark.parametrize("text", NEGATIVES)
def test_hard_negatives_are_clean(text: str) -> None:
    assert scan(text) == []


def test_json_escaped_view_maps_back() -> None:
    key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n"
    text = json.dumps({"type": "service_account", "private_key": key})
    escaped = json.dumps(key)[1:-1]
    start = text.index(escaped)
    found = scan(text)
    assert any(f.start <= start and f.end >= start + len(escaped) - 2 for f in found)


def test_url_encoded_view_maps_back() -> None:
    email = "maria.gonzalez84@gmail.com"
    text = "GET /signup?email=" + quote(email, safe="") + "&x=1"
    start = text.index("maria")
    end = text.index("&x")
    assert any(f.kind == "email" and f.start == start and f.end == end for f in scan(text))


def test_non_ascii_offsets_are_characters() -> None:
    text = "naïve café → key: ghp_" + "x7Kq9ZrT2mVbN4pL8sWc1yHd5jFa3gEu6oRi"
    (finding,) = scan(text)
    assert text[finding.start : finding.end].startswith("ghp_")


@pytest.mark.parametrize(
    "text",
    [
        "GET /cb?user=alice&token=Zk3mQ9pL2xVb7nR4&next=%2Fhome",
        "Server=tcp:db,1433;User ID=admin;Password=Zk3mQ9pL2xVb7nR4;Encrypt=True;",
    ],
)
def test_value_stops_at_next_parameter(text: str) -> None:
    [found] = scan(text)
    assert text[found.start : found.end] == "Zk3mQ9pL2xVb7nR4"


@pytest.mark.parametrize(
    ("value", "stand_in"),
    [
        ("fake_key_123", True),
        ("sk_test_FAKE1234567890", True),
        ("myFakeToken", True),
        ("je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY", True),
        ("TODO_FILL_IN", True),
        ("sample-token-value", True),
        # A stand-in word that only happens to sit inside random characters.
        (
            "pypi-AgEIcHlwaS5vcmccmmnzspEsW1ErQKI-npTSuu2vBQ5jROYNrGWckd-xQULOZmaQuY-moGKKRcyyuFgQkH8",
            False,
        ),
        ("SG.dZT1PoaWyfEZUmcHFyzSEo.pNu6CbdDXZlmc3oYQjUpyqxXK0todON2e2", False),
        ("mockingbird99", False),
        ("=aV@$mE6o^%sZC-nG", False),  # `%s` inside a random password is no format field
        ("user=%s", True),
    ],
)
def test_stand_in_words_count_where_a_word_starts(value: str, stand_in: bool) -> None:
    assert is_placeholder(value) is stand_in
