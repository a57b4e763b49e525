import time
from test_registry_repo import *  # noqa

def test_timing(registry_open, image_factory, skopeo, raw_client, playbook, unique_repo_factory):
    server = registry_open
    sk, raw = skopeo(server), raw_client(server)
    repo = unique_repo_factory()
    t=time.time(); single = image_factory(layers=1); print("img", time.time()-t)
    t=time.time(); push(raw, single, repo, "a", "b"); print("push", time.time()-t)
    t=time.time(); tag_state(sk, repo); print("tag_state", time.time()-t)
    t=time.time(); sk.exists(f"{repo}@{single.digest}"); print("exists", time.time()-t)
    t=time.time(); r = playbook([repo_task("x", server, repository=f"{server.host}/{repo}")]); print("pb1", time.time()-t)
    t=time.time(); r = playbook([repo_task("x", server, repository=f"{server.host}/{repo}"), repo_task("y", server, repository=f"{server.host}/{repo}")]); print("pb2", time.time()-t)
    t=time.time(); r = playbook([repo_task("x", server, repository=f"{server.host}/{repo}", state="absent")]); print("pb-absent", time.time()-t)
