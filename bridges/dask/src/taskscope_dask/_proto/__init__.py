"""Generated code for taskscope's Observe gRPC (``proto/proto/observe.proto``).

Do not edit: regenerate with ``python bridges/dask/scripts/generate_proto.py``.
"""
