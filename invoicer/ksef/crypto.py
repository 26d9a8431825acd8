"""KSeF's encryption, as sesja-interaktywna.md and uwierzytelnianie.md lay it down.

- The KSeF token goes as ``token|timestampMs`` encrypted RSA-OAEP (MGF1 and digest SHA-256)
  with the Ministry's ``KsefTokenEncryption`` key, Base64.
- An invoice goes AES-256-CBC with PKCS#7 padding under a fresh 32-byte key and 16-byte IV
  per session. The IV travels in the session's opening, not in front of the ciphertext (the
  description's own example: a 6480-byte invoice is 6496 bytes encrypted, one padding block).
- The AES key goes wrapped RSA-OAEP (SHA-256) with the ``SymmetricKeyEncryption`` key.
- Files are described by their SHA-256 (Base64) and size in bytes, before and after
  encryption.

The Ministry's keys are X.509 certificates; a key's ``publicKeyId`` is the Base64 SHA-256 of
the DER SubjectPublicKeyInfo, the id KSeF asks for beside what was encrypted with it.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

TOKEN_USAGE = "KsefTokenEncryption"
SYMMETRIC_KEY_USAGE = "SymmetricKeyEncryption"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def oaep() -> OAEP:
    """RSAES-OAEP with MGF1(SHA-256) and SHA-256, the only padding KSeF takes."""
    return OAEP(mgf=MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


@dataclass(frozen=True)
class FileDigest:
    """A file as KSeF describes it: SHA-256 in Base64 and the size in bytes."""

    sha256: str
    size: int

    @classmethod
    def of(cls, data: bytes) -> FileDigest:
        return cls(sha256=b64(hashlib.sha256(data).digest()), size=len(data))


@dataclass(frozen=True)
class MinistryKey:
    """One of the Ministry's public keys: what it may encrypt and until when."""

    public_key_id: str
    key: rsa.RSAPublicKey
    usage: frozenset[str]
    valid_from: datetime
    valid_to: datetime

    def valid_at(self, moment: datetime) -> bool:
        return self.valid_from <= moment <= self.valid_to


def public_key_id(key: rsa.RSAPublicKey) -> str:
    """Base64 SHA-256 of the DER SubjectPublicKeyInfo."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return b64(hashlib.sha256(der).digest())


def certificate_key(certificate: x509.Certificate) -> rsa.RSAPublicKey:
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError(f"the certificate {certificate.subject.rfc4514_string()} holds no RSA key")
    return key


def encrypt_ksef_token(key: rsa.RSAPublicKey, token: str, timestamp_ms: int) -> str:
    """``token|timestampMs`` encrypted for /auth/ksef-token's ``encryptedToken``."""
    return b64(key.encrypt(f"{token}|{timestamp_ms}".encode(), oaep()))


@dataclass(frozen=True)
class SymmetricKey:
    """A session's AES-256 key and IV; ``new()`` draws them from the OS's random source."""

    key: bytes = field(repr=False)
    iv: bytes

    @classmethod
    def new(cls) -> SymmetricKey:
        return cls(key=os.urandom(32), iv=os.urandom(16))

    def wrapped(self, ministry_key: rsa.RSAPublicKey) -> str:
        """The key RSA-OAEP-encrypted for the session's ``encryptedSymmetricKey``."""
        return b64(ministry_key.encrypt(self.key, oaep()))

    def encrypt(self, data: bytes) -> bytes:
        padder = padding.PKCS7(128).padder()
        padded = padder.update(data) + padder.finalize()
        encryptor = Cipher(algorithms.AES(self.key), modes.CBC(self.iv)).encryptor()
        return encryptor.update(padded) + encryptor.finalize()

    def decrypt(self, data: bytes) -> bytes:
        decryptor = Cipher(algorithms.AES(self.key), modes.CBC(self.iv)).decryptor()
        padded = decryptor.update(data) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        return unpadder.update(padded) + unpadder.finalize()
