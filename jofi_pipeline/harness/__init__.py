"""What the test suite and the benchmarks (bench/) both drive the pipeline with; the pipeline never
imports it. Here so that bench/ needs nothing from the tests:

  zygote.py            a pre-imported `jofi-pipeline` that forks real CLI processes to kill -9
  crash.py             one kill -9 trial and its verdict
  published_state.py   the published pair observed: whole, unique keys, one run's state
  history_oracle.py    history chains checked apart from the product's own SQL check
  truth.py             ids held vs the simulator's truth
  threaded_server.py   an ASGI app under uvicorn in a thread (a webhook receiver, a fake peer)
  dagster_home.py      a Dagster home on the project's dagster.yaml, for a `dagster dev` of their own
"""
