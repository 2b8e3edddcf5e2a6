# Test-only: the TF Serving stand-in (services/tf-serving) in the TF Serving container's place,
# because the real tensorflow/serving image cannot be pulled here. It is the model exporter's
# image (TensorFlow and TF Serving's protos already in /opt/venv) plus the stand-in, installed
# from its path, and `tensorflow_model_server` names the stand-in, so the rendered Deployment's
# command and args run unchanged: a flag TF Serving would refuse, the stand-in refuses too.
# Built by tests/containers from the repository root:
#   docker build -f tests/containers/tf-serving-standin.Dockerfile --build-arg EXPORTER_IMAGE=... .
ARG EXPORTER_IMAGE=mnist.local/mnist-model-exporter:latest
FROM ${EXPORTER_IMAGE}
USER 0:0
COPY requirements/constraints.txt /src/requirements/constraints.txt
COPY libs/serving_protos /src/libs/serving_protos
COPY libs/mnist_common /src/libs/mnist_common
COPY services/tf-serving /src/services/tf-serving
# Every local package from its path (none is ever looked up on an index), the protos generated
# from the tensorflow-serving-api installed beside them. (The exporter image's generated/ folder is
# removed first: overlayfs cannot rename a folder of a lower layer, which the generator would do.)
RUN /opt/venv/bin/pip install --no-cache-dir --no-build-isolation -c /src/requirements/constraints.txt \
        /src/libs/serving_protos /src/libs/mnist_common /src/services/tf-serving \
    && rm -rf /opt/venv/lib/python3*/site-packages/mnist_serving_protos/generated \
    && /opt/venv/bin/python -m mnist_serving_protos.generate \
    && /opt/venv/bin/pip check \
    && ln -s tfserving-standin /opt/venv/bin/tensorflow_model_server \
    && rm -rf /src
USER 10001:10001
ENTRYPOINT ["tensorflow_model_server"]
