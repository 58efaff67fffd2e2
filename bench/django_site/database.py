"""The bench database, made with sqlite3 (no Django, no migrations to run)."""

import sqlite3


def make_database(path: str, rows: int = 20) -> None:
    """The one table the page queries, filled (made with sqlite3: no migrations to run)."""
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE IF EXISTS bench_item")
        db.execute(
            "CREATE TABLE bench_item (id INTEGER PRIMARY KEY, name VARCHAR(100), price INTEGER)"
        )
        db.executemany(
            "INSERT INTO bench_item (name, price) VALUES (?, ?)",
            [(f"Item {n}", n * 100) for n in range(rows)],
        )
