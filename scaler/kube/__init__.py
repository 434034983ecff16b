"""All of peakcast's cluster I/O: the only package that imports the ``kubernetes`` client.

Entry points: ``registry.build_actuator(settings, dry_run)`` returns a ``KubeActuator`` (the
``Actuator`` protocol), and ``client.build_api_client(kubeconfig_path=..., context=...,
host=...)`` builds the official client. Pool modes live in ``gpunodepool``, ``placeholder`` and
``custom_field``; workload floor owners in ``hpa``, ``keda``, ``kserve`` and ``deployment``.
"""
