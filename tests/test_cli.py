"""The `iscc-registry` command as a user runs it: real process, real devnet, real files."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from PIL import Image

from registry.chain.deployment import Deployment
from registry.chain.devnet import free_port
from registry.chain.iscc_id import IsccId

CLI = str(Path(sys.executable).parent / "iscc-registry")


def run(home: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {**os.environ, "ISCC_REGISTRY_HOME": str(home), **(env or {})}
    environ.pop("ISCC_REGISTRY_KEY_PASSWORD", None)
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=environ, timeout=300)


def assert_clean_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """A non-zero exit with one `error:` line naming the problem, never a traceback."""
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def media(tmp_path: Path) -> list[Path]:
    """Three files of different kinds that the test makes itself."""
    text = tmp_path / "poem.txt"
    text.write_text("The registry remembers who came first.\n" * 40, encoding="utf-8")
    image = tmp_path / "gradient.png"
    Image.linear_gradient("L").resize((96, 64)).convert("RGB").save(image)
    blob = tmp_path / "blob.bin"
    blob.write_bytes(bytes(range(256)) * 64)
    return [text, image, blob]


@pytest.mark.chain
def test_three_files_two_keys_declared_indexed_resolved(
    home: Path, deployment: Deployment, media: list[Path]
) -> None:
    deployment.save(home / "deployment.json")
    keys = {}
    for name in ("alice", "bob"):
        proc = run(home, "keys", "new", name, "--json")
        assert proc.returncode == 0, proc.stderr
        keys[name] = json.loads(proc.stdout)["address"]
    owners = ["alice", "alice", "bob"]
    declared = []
    for path, owner in zip(media, owners, strict=True):
        proc = run(
            home, "declare", str(path), "--key", owner, "--gateway", "https://example.org", "--json"
        )
        assert proc.returncode == 0, proc.stderr
        declared.append(json.loads(proc.stdout))
    for first, second in itertools.pairwise(declared):
        assert IsccId.parse(first["iscc_id"]).body < IsccId.parse(second["iscc_id"]).body

    proc = run(home, "index", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["events_new"] == 3
    proc = run(home, "index", "--json")
    assert json.loads(proc.stdout)["events_new"] == 0

    for item, owner in zip(declared, owners, strict=True):
        for query in (item["iscc_id"], item["iscc"]):
            proc = run(home, "resolve", query, "--json")
            assert proc.returncode == 0, proc.stderr
            records = json.loads(proc.stdout)["records"]
            assert [(r["iscc_id"], r["declarer"]) for r in records] == [
                (item["iscc_id"], keys[owner])
            ]
    proc = run(home, "resolve", keys["alice"], "--json")
    assert sorted(r["iscc_id"] for r in json.loads(proc.stdout)["records"]) == sorted(
        d["iscc_id"] for d in declared[:2]
    )
    proc = run(home, "resolve", keys["bob"])
    assert proc.returncode == 0 and declared[2]["iscc_id"] in proc.stdout


@pytest.mark.chain
def test_sign_verify_and_submit_later(
    home: Path, deployment: Deployment, media: list[Path]
) -> None:
    deployment.save(home / "deployment.json")
    password = home / "pw.txt"
    home.mkdir(parents=True, exist_ok=True)
    password.write_text("correct horse\n")
    assert run(home, "keys", "new", "carol", "--password-file", str(password)).returncode == 0
    signed = home / "decl.json"
    proc = run(
        home,
        "sign",
        str(media[0]),
        "--key",
        "carol",
        "--password-file",
        str(password),
        "-o",
        str(signed),
    )
    assert proc.returncode == 0, proc.stderr
    proc = run(home, "verify", str(signed))
    assert proc.returncode == 0 and "valid" in proc.stdout
    data = json.loads(signed.read_text())
    data["declaration"]["gateway"] = "https://tampered.example"
    tampered = home / "tampered.json"
    tampered.write_text(json.dumps(data))
    assert_clean_error(run(home, "verify", str(tampered)), "not by the declarer")
    proc = run(home, "declare", "--signed", str(signed), "--json")
    assert proc.returncode == 0, proc.stderr
    assert_clean_error(run(home, "declare", "--signed", str(signed)), "NonceAlreadyUsed")
    assert_clean_error(run(home, "sign", str(media[0]), "--key", "carol"), "encrypted")


@pytest.mark.chain
def test_sealed_declaration_is_committed_revealed_and_indexed_as_sealed(
    home: Path, deployment: Deployment, media: list[Path]
) -> None:
    deployment.save(home / "deployment.json")
    assert run(home, "keys", "new", "dora").returncode == 0
    proc = run(home, "declare", str(media[2]), "--key", "dora", "--sealed", "--json")
    assert proc.returncode == 0, proc.stderr
    declared = json.loads(proc.stdout)
    assert declared["kind"] == "sealed"
    assert declared["committed_at"] < IsccId.parse(declared["iscc_id"]).timestamp_us
    assert run(home, "index").returncode == 0
    proc = run(home, "resolve", declared["iscc_id"], "--json")
    (record,) = json.loads(proc.stdout)["records"]
    assert (record["kind"], record["committed_at"]) == ("sealed", declared["committed_at"])
    assert record["record"] == str(declared["record"])
    assert_clean_error(
        run(home, "declare", str(media[2]), "--key", "dora", "--sealed", "--direct"), "--sealed"
    )


def test_missing_file(home: Path) -> None:
    assert_clean_error(run(home, "gen", str(home / "nope.txt")), "nope.txt")


def test_empty_directory(home: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_clean_error(run(home, "gen", str(empty)), "no files found")


def test_unreadable_file(home: Path) -> None:
    # Outside pytest's private tmp tree, so that only the file itself is off limits.
    folder = Path(tempfile.mkdtemp())
    folder.chmod(0o755)
    path = folder / "secret.txt"
    path.write_text("x" * 100)
    path.chmod(0)
    prefix = []
    if os.geteuid() == 0:
        # Root reads anything: run the command as nobody, for whom the file is unreadable.
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    proc = subprocess.run(
        [*prefix, CLI, "gen", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "ISCC_REGISTRY_HOME": str(home)},
        timeout=120,
    )
    shutil.rmtree(folder)
    assert_clean_error(proc, "permission denied", "secret.txt")


@pytest.mark.parametrize("query", ["ISCC:XYZ", "hello", "0x1234", "ISCC:" + "A" * 30])
def test_malformed_query(home: Path, query: str) -> None:
    assert_clean_error(run(home, "resolve", query))


def test_wrong_key_file(
    home: Path, tmp_path: Path, media: list[Path], deployment_file: Path
) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("this is not a key")
    assert_clean_error(run(home, "declare", str(media[0]), "--key", str(bad)), "bad.key")
    assert_clean_error(run(home, "declare", str(media[0]), "--key", "nobody"), "nobody")


@pytest.fixture
def deployment_file(home: Path) -> Path:
    """A deployment file pointing at a port where no node runs."""
    dead = Deployment(31337, "0x" + "11" * 20, 1, f"http://127.0.0.1:{free_port()}", 0, 0)
    dead.save(home / "deployment.json")
    return home / "deployment.json"


def test_devnet_not_running(home: Path, media: list[Path], deployment_file: Path) -> None:
    assert run(home, "keys", "new", "dave").returncode == 0
    assert_clean_error(
        run(home, "declare", str(media[2]), "--key", "dave"), "no Ethereum node answers"
    )
    assert_clean_error(run(home, "index"), "no Ethereum node answers")


def test_no_deployment(home: Path, media: list[Path]) -> None:
    assert run(home, "keys", "new", "erin").returncode == 0
    assert_clean_error(run(home, "declare", str(media[2]), "--key", "erin"), "devnet start")


def test_devnet_status_when_stopped(home: Path) -> None:
    proc = run(home, "devnet", "status")
    assert proc.returncode == 1 and "not running" in proc.stdout


COMMANDS = [
    *(
        (name,)
        for name in (
            "gen", "sign", "verify", "declare", "revoke", "update", "transfer", "index",
            "resolve", "search", "match", "conflicts", "serve", "demo",
        )
    ),
    *(("keys", name) for name in ("new", "show")),
    *(("devnet", name) for name in ("start", "stop", "status", "fund")),
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_reads_as_written_by_hand(home: Path, command: tuple[str, ...]) -> None:
    # Wide enough that no paragraph of a help text needs wrapping: a line break inside one
    # would be the docstring's own.
    proc = run(home, *command, "--help", env={"COLUMNS": "250"})
    assert proc.returncode == 0, proc.stderr
    for placeholder in ("<bool>", "<str>", "<int", "<float", "<list", "<path", "{"):
        assert placeholder not in proc.stdout, (placeholder, proc.stdout)
    usage = next(line for line in proc.stdout.splitlines() if "Usage:" in line)
    assert usage.split("[OPTIONS]")[-1].strip() == usage.split("[OPTIONS]")[-1].strip().upper()
    if command == ("demo",):
        assert "from two keys, index, resolve, and print what happened" in proc.stdout


def test_startup_loads_no_heavy_library() -> None:
    """`--help` and `gen` must not pay for web3, eth-account and friends (1.5 s of imports)."""
    heavy = ("eth_account", "web3", "py_ecc", "numpy", "PIL", "av", "sqlalchemy", "pydantic")
    probe = f"import sys, registry.cli; print([m for m in {heavy!r} if m in sys.modules])"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_read_only_commands_never_create_a_store(home: Path) -> None:
    iscc_id = str(IsccId(body=1 << 40, realm=0))
    for args in (
        ("resolve", "hello-world"),
        ("resolve", iscc_id),
        ("search", "ISCC:EEA4GQZQTY6J5DTH"),
        ("conflicts",),
    ):
        proc = run(home, *args)
        assert proc.returncode != 0, args
        assert "Traceback" not in proc.stderr
    assert_clean_error(run(home, "resolve", iscc_id), "no index store", "index")
    assert_clean_error(run(home, "resolve", "hello-world"), "cannot resolve 'hello-world'")
    assert not (home / "registry.db").exists()


def test_a_picture_given_as_key_is_named_as_not_a_key(
    home: Path, media: list[Path], deployment_file: Path
) -> None:
    picture = media[1]
    proc = run(home, "declare", str(media[0]), "--key", str(picture))
    assert_clean_error(proc, f"{picture} is not a key file")
    assert "codec" not in proc.stderr


def test_gen_names_units_and_shows_paths_within_a_directory(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "works"
    (folder / "sub").mkdir(parents=True)
    Image.new("RGB", (48, 32), (200, 30, 30)).save(folder / "sub" / "photo.png")
    (folder / "note.txt").write_text("A short note about the photo.\n" * 20)
    proc = run(home, "gen", str(folder))
    assert proc.returncode == 0, proc.stderr
    lines = [" ".join(line.split()) for line in proc.stdout.splitlines()]
    assert "file sub/photo.png" in lines and "file note.txt" in lines
    names = [line.split(" ISCC:")[0] for line in lines if " ISCC:" in line]
    assert names.count("Meta-Code") == 2 and "Image-Code" in names and "Text-Code" in names
    assert names.count("Data-Code") == 2 and names.count("Instance-Code") == 2
    assert not any(line.startswith("unit ") for line in lines)
    as_json = json.loads(run(home, "gen", str(folder), "--json").stdout)
    assert sorted(item["file"] for item in as_json) == ["note.txt", "sub/photo.png"]


def test_a_video_without_frames_is_explained(home: Path, tmp_path: Path) -> None:
    import imageio_ffmpeg

    empty = tmp_path / "empty.mkv"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "color=size=64x64",
         "-frames:v", "0", "-c:v", "mpeg4", str(empty)],
        check=True,
    )  # fmt: skip
    proc = run(home, "gen", str(empty))
    assert_clean_error(proc, "empty.mkv", "empty or cut short")


def test_serve_refuses_an_address_it_cannot_listen_on(home: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run(home, "serve", "--port", str(port))
    assert_clean_error(proc, f"cannot listen on 127.0.0.1:{port}")
    assert "serving" not in proc.stderr + proc.stdout
    out_of_range = run(home, "serve", "--port", "99999")
    assert out_of_range.returncode != 0 and "65535" in out_of_range.stderr
    assert "serving" not in out_of_range.stderr
