"""Repositories behind an HTTPS server that demands a TLS client certificate (a repository Secret's
`tlsClientCertData` / `tlsClientCertKey`), fetched for real: git's own http-backend behind a loopback
TLS server that requires a certificate signed by the test CA, certificates made with `cryptography`.

libgit2 cannot present a client certificate, so these fetches go through dulwich into the same cache;
the tests check the cache then behaves as after any fetch (resolve, trees, moved and pruned refs), and
that a missing, half or foreign certificate fails loudly instead of fetching without one."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shared.core.errors import ConfigurationError, WaveCDError
from shared.source.git_credentials import CredentialStore, RepoCredential, credentials_from_secrets
from shared.source.git_source import RepoCache
from tests.fixtures.git import GitFactory, GitHttpServer, _http_backend

PASSWORD = GitHttpServer.password


@dataclass
class Pem:
    cert: str
    key: str


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _issue(subject: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None, *,
           ca: bool = False, server: bool = False) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    signer_cert, signer_key = issuer if issuer else (None, key)
    builder = (x509.CertificateBuilder().subject_name(_name(subject))
               .issuer_name(signer_cert.subject if signer_cert else _name(subject))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(signer_key, hashes.SHA256()), key


def _pem(pair: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> Pem:
    cert, key = pair
    return Pem(cert.public_bytes(serialization.Encoding.PEM).decode(),
               key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode())


@dataclass
class Pki:
    ca_file: Path
    server: Pem
    client: Pem
    foreign: Pem  # a client certificate from another CA


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca = _issue("wavecd test CA", None, ca=True)
    other_ca = _issue("someone else's CA", None, ca=True)
    ca_file = folder / "ca.crt"
    ca_file.write_text(_pem(ca).cert)
    return Pki(ca_file, _pem(_issue("127.0.0.1", ca, server=True)), _pem(_issue("wavecd", ca)),
               _pem(_issue("wavecd", other_ca)))


class GitHttpsServer(GitHttpServer):
    """The suite's smart-HTTP git server (basic auth) behind TLS that requires a client certificate."""

    def __init__(self, backend: str, context: ssl.SSLContext) -> None:
        import threading

        self.backend = backend
        self.repos = {}
        self.requests = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url_for(self, handle, *, with_credentials: str | None = None) -> str:  # noqa: ANN001
        return super().url_for(handle, with_credentials=with_credentials).replace("http://", "https://", 1)


@pytest.fixture()
def https_server(pki: Pki, tmp_path: Path) -> Iterator[GitHttpsServer]:
    backend = _http_backend()
    if backend is None:
        pytest.skip("git http-backend is not installed (needed to serve repositories over smart HTTP)")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    (tmp_path / "server.crt").write_text(pki.server.cert)
    (tmp_path / "server.key").write_text(pki.server.key)
    context.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    context.load_verify_locations(cafile=str(pki.ca_file))
    context.verify_mode = ssl.CERT_REQUIRED
    server = GitHttpsServer(backend, context)
    yield server
    server.close()


@pytest.fixture()
def trust_ca(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's certificate is trusted as a system CA would make it (OpenSSL's SSL_CERT_FILE)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_file))


def _secret(url: str, *, cert: str | None, key: str | None, insecure: bool = False) -> dict[str, object]:
    data: dict[str, str] = {"url": url, "username": GitHttpServer.username, "password": PASSWORD}
    if cert is not None:
        data["tlsClientCertData"] = cert
    if key is not None:
        data["tlsClientCertKey"] = key
    if insecure:
        data["insecure"] = "true"
    return {"metadata": {"name": "repo", "labels": {"argocd.argoproj.io/secret-type": "repository"}},
            "stringData": data}


def _cache(tmp_path: Path, secret: dict[str, object]) -> RepoCache:
    return RepoCache(tmp_path / "cache", CredentialStore(credentials_from_secrets([secret])), timeout=20)


@pytest.mark.usefixtures("trust_ca")
def test_fetch_presents_the_client_certificate(https_server: GitHttpsServer, git_factory: GitFactory,
                                               pki: Pki, tmp_path: Path) -> None:
    handle = git_factory.create("certified", {"app/cm.yaml": "kind: ConfigMap\n"})
    first = handle.head()
    handle.commit({"app/other.yaml": "kind: ConfigMap\n"}, branch="feature")
    handle.tag("v1", first, annotated=True)
    url = https_server.url_for(handle)
    cache = _cache(tmp_path, _secret(url, cert=pki.client.cert, key=pki.client.key))

    assert cache.fetch(url).fetched
    assert cache.resolve(url, "HEAD") == first and cache.resolve(url, "v1") == first
    assert cache.path_tree_id(url, first, "app") is not None
    assert any(path.startswith("/certified.git") for _, path, status in https_server.requests if status == 200)

    second = handle.commit({"app/cm.yaml": "kind: ConfigMap\n# v2\n"})
    handle.delete_branch("feature")
    assert cache.fetch(url).fetched  # the remote moved: fetched again, refs moved and pruned
    assert cache.resolve(url, "main") == second
    assert "refs/heads/feature" not in cache.open(url).references
    assert cache.fetch(url).fetched is False  # and unchanged refs skip the fetch, as with libgit2


def test_without_a_client_certificate_the_fetch_fails(https_server: GitHttpsServer, git_factory: GitFactory,
                                                      tmp_path: Path) -> None:
    handle = git_factory.create("certified")
    url = https_server.url_for(handle)
    # libgit2, which presents none; `insecure` so that the server's own certificate is not what fails.
    cache = _cache(tmp_path, _secret(url, cert=None, key=None, insecure=True))
    with pytest.raises(WaveCDError) as refused:
        cache.fetch(url)
    assert "SSL" in str(refused.value) and PASSWORD not in str(refused.value)
    assert not list(cache.open(url).references)


@pytest.mark.usefixtures("trust_ca")
def test_a_certificate_of_another_ca_is_refused(https_server: GitHttpsServer, git_factory: GitFactory,
                                                pki: Pki, tmp_path: Path) -> None:
    handle = git_factory.create("certified")
    url = https_server.url_for(handle)
    cache = _cache(tmp_path, _secret(url, cert=pki.foreign.cert, key=pki.foreign.key))
    with pytest.raises(WaveCDError) as refused:
        cache.fetch(url)
    text = str(refused.value)
    assert PASSWORD not in text and "PRIVATE KEY" not in text
    assert not list(cache.open(url).references)


def test_insecure_skips_the_server_check_but_still_presents_the_certificate(
        https_server: GitHttpsServer, git_factory: GitFactory, pki: Pki, tmp_path: Path) -> None:
    handle = git_factory.create("certified")
    url = https_server.url_for(handle)
    cache = _cache(tmp_path, _secret(url, cert=pki.client.cert, key=pki.client.key, insecure=True))
    cache.fetch(url)
    assert cache.resolve(url, "HEAD") == handle.head()
    untrusted = _cache(tmp_path / "strict", _secret(url, cert=pki.client.cert, key=pki.client.key))
    with pytest.raises(WaveCDError):  # the test CA is not trusted here: verification is on by default
        untrusted.fetch(url)


@pytest.mark.parametrize("half", ["cert", "key"])
def test_half_a_certificate_is_a_configuration_error(pki: Pki, tmp_path: Path, half: str) -> None:
    url = "https://127.0.0.1:9/never.git"
    secret = _secret(url, cert=pki.client.cert if half == "cert" else None,
                     key=pki.client.key if half == "key" else None)
    with pytest.raises(ConfigurationError) as refused:
        _cache(tmp_path, secret).fetch(url)
    assert "tlsClientCert" in str(refused.value) and "PRIVATE" not in str(refused.value)


def test_a_key_that_does_not_load_is_a_configuration_error_without_the_key(pki: Pki, tmp_path: Path) -> None:
    url = "https://127.0.0.1:9/never.git"
    broken = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"
    with pytest.raises(ConfigurationError) as refused:
        _cache(tmp_path, _secret(url, cert=pki.client.cert, key=broken)).fetch(url)
    assert "not a PEM certificate" in str(refused.value) and "bm90IGEga2V5" not in str(refused.value)


def test_repr_and_secrets_of_a_certificate_credential(pki: Pki) -> None:
    (entry,) = credentials_from_secrets([_secret("https://git.example.com/r.git", cert=pki.client.cert,
                                                 key=pki.client.key)])
    assert isinstance(entry, RepoCredential) and pki.client.key not in repr(entry)
    assert pki.client.key in entry.secrets()
