# JupyterLab with GoNB, goimports, the XLA PJRT CPU plugin, gomor and its notebooks.
#
# A thin wrapper over scripts/setup, the script CI runs, so the image contains what CI tests.
# NOTE: never built: no Docker engine runs on the machines this was written on.
#
#   docker build -t gomor .
#   docker run --rm -p 8888:8888 gomor
FROM golang:1.26-bookworm

# Debian bookworm's Python is 3.11; venv creates the virtual environment scripts/setup uses.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-pip git ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/gomor
COPY . .

# A virtual environment outside the source tree, so that a .venv copied from the build context
# (made for another machine's paths) is never reused.
ENV GOMOR_VENV=/opt/gomor-venv \
    GOMOR_CHECKOUT=/opt/gomor \
    GOMLX_NO_AUTO_INSTALL=1
RUN rm -rf .venv && scripts/setup --jupyterlab

# GoNB runs go and goimports from the PATH of the process that starts Jupyter.
ENV PATH=/opt/gomor-venv/bin:/go/bin:/usr/local/go/bin:$PATH
EXPOSE 8888
CMD ["jupyter", "lab", "--ip=0.0.0.0", "--port=8888", "--no-browser", "--allow-root", "--notebook-dir=/opt/gomor/notebooks"]
