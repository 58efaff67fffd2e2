"""Side-by-side benchmarks of narrows against its peers (uvicorn, granian, daphne, hypercorn).

Run them from the repository root with the peers' venv: ``bench/setup`` then ``bench/run``.
"""
