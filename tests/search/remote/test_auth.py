"""The Ray token file: made 0600, a loose one tightened, the refusal said in one line."""

import logging
import stat

from search.remote.auth import TOKEN_HELP, make_private_token, private_token, refused, token_file


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_a_local_launch_makes_a_private_token_where_ray_would_make_one(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(name, raising=False)
    make_private_token()
    made = tmp_path / ".ray" / "auth_token"
    assert token_file() == made and mode(made) == 0o600 and mode(made.parent) == 0o700
    assert len(made.read_text()) == 64  # 256 random bits in hex, as Ray makes them
    before = made.read_text()
    make_private_token()
    assert made.read_text() == before  # never replaced
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    made.unlink()
    make_private_token()
    assert not made.exists()  # token auth switched off by the user: nothing made


def test_a_loose_token_file_is_tightened_once(tmp_path, caplog):
    path = tmp_path / "auth_token"
    path.write_text("x" * 64)
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        private_token(path)
        private_token(path)
    assert mode(path) == 0o600
    assert caplog.text.count("private: mode 0644 -> 0600") == 1
    private_token(None)  # the token came from RAY_AUTH_TOKEN: no file to look at


def test_a_refusal_names_the_address_and_the_token_used():
    line = refused("http://127.0.0.1:8265", "/home/a/.ray/auth_token")
    assert line == ("the Ray cluster at http://127.0.0.1:8265 requires token authentication and "
                    f"the token from /home/a/.ray/auth_token was refused; {TOKEN_HELP}")
    assert "no token was found" in refused("h:6379", None) and "\n" not in line
