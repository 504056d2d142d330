"""Operations around the runs: a tracking server process and its logins (server side)."""
