"""Test credentials: an RSA service-account key pair and the JWT check the token endpoint does."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


@dataclass(frozen=True)
class ServiceAccountKey:
    info: dict[str, Any]  # the key file's JSON (holds the private key)
    public_key_pem: bytes

    @property
    def client_email(self) -> str:
        return str(self.info["client_email"])


def generate_service_account(token_uri: str, email: str = "flagops-test") -> ServiceAccountKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    client_email = email if "@" in email else f"{email}@flagops-test.iam.gserviceaccount.com"
    info = {
        "type": "service_account",
        "project_id": "flagops-test",
        "private_key_id": secrets.token_hex(20),
        "private_key": private_pem,
        "client_email": client_email,
        "client_id": str(secrets.randbelow(10**20)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    }
    return ServiceAccountKey(info, public_pem)


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class JwtError(Exception):
    pass


def verify_jwt(assertion: str, public_keys: dict[str, bytes]) -> dict[str, Any]:
    """Check an RS256 JWT-bearer assertion against the registered keys; return its claims."""
    try:
        header_b64, payload_b64, signature_b64 = assertion.split(".")
        header = json.loads(_b64decode(header_b64))
        claims = json.loads(_b64decode(payload_b64))
    except ValueError as exc:
        raise JwtError("malformed assertion") from exc
    if header.get("alg") != "RS256":
        raise JwtError("unsupported alg")
    pem = public_keys.get(str(claims.get("iss")))
    if pem is None:
        raise JwtError("unknown issuer")
    public_key = serialization.load_pem_public_key(pem)
    assert isinstance(public_key, rsa.RSAPublicKey)
    try:
        public_key.verify(
            _b64decode(signature_b64),
            f"{header_b64}.{payload_b64}".encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except InvalidSignature as exc:
        raise JwtError("Invalid JWT Signature.") from exc
    return dict(claims)
