"""Serving: the InferenceService kind, the model server, batching, the gateway and the
autoscaler (DESIGN.md section 4).

The model server (:mod:`cnai.serving.server`) is what an InferenceService's pods run:
Open Inference Protocol v2 and KServe v1 over a lean ASGI app. The autoscaler
(:mod:`cnai.serving.autoscaler`) is a pure function over request metrics with Knative
KPA semantics.
"""
