"""Who produced a model: an Ed25519 signature over its version, detached beside the file.

With MODEL_TRUSTED_KEYS set, a model loads only when one of those public keys verifies the
signature in `<model file>.sig` (hex, one line) over `edgeserve-model:<full version>`. The
version covers the ONNX bytes and the sidecar (inference.version), so a signature vouches for
exactly what answers; the prefix keeps the signature from meaning anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edgeserve.errors import ModelLoadError

SIGNATURE_BYTES = 64


def signature_path(model: Path) -> Path:
    """`<model file>.sig`, beside the model as its sidecar is."""
    return model.with_name(model.name + ".sig")


def signed_message(version: str) -> bytes:
    return f"edgeserve-model:{version}".encode()


def new_key_pair() -> tuple[bytes, bytes]:
    """A private key (PEM, PKCS#8, unencrypted) and its public key (PEM)."""
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


def sign(private_pem: bytes, version: str) -> str:
    """The hex signature of `version` by this Ed25519 private key (ValueError if it is not one)."""
    try:
        key = serialization.load_pem_private_key(private_pem, password=None)
    except (TypeError, UnsupportedAlgorithm) as error:
        raise ValueError(str(error)) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"it is a {type(key).__name__}, not an Ed25519 private key")
    return key.sign(signed_message(version)).hex()


def public_key(pem: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (ValueError naming what is wrong otherwise)."""
    try:
        key = serialization.load_pem_public_key(pem)
    except UnsupportedAlgorithm as error:
        raise ValueError(str(error)) from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"it is a {type(key).__name__}, not an Ed25519 public key")
    return key


def read_signature(model: Path) -> str | None:
    """The signature beside `model`, or None when it has none."""
    try:
        return signature_path(model).read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None


@dataclass(frozen=True)
class TrustedKeys:
    keys: tuple[Ed25519PublicKey, ...]
    """Empty: signatures are not required."""

    @classmethod
    def from_files(cls, files: tuple[Path, ...]) -> TrustedKeys:
        return cls(tuple(public_key(Path(file).read_bytes()) for file in files))

    def check(self, signature: str | None, version: str, name: str) -> None:
        """Refuse a model of `version` that no trusted key signed: 422 model_unsigned without
        a signature, model_signature_invalid when none of the keys verifies it."""
        if not self.keys:
            return
        if not signature:
            raise ModelLoadError(
                f"model {name} ({version[:12]}) is unsigned and MODEL_TRUSTED_KEYS is set: sign "
                "it with edgeserve models sign FILE --key KEY and push it with its .sig file",
                code="model_unsigned",
            )
        try:
            raw = bytes.fromhex(signature)
        except ValueError:
            raw = b""
        for key in self.keys:
            try:
                key.verify(raw, signed_message(version))
            except InvalidSignature:
                continue
            return
        raise ModelLoadError(
            f"the signature of model {name} ({version[:12]}) is not verified by any key of "
            "MODEL_TRUSTED_KEYS: it was signed by another key, or for other bytes or sidecar; "
            "sign this very file with a trusted key",
            code="model_signature_invalid",
        )
