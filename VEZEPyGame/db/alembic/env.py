from VEZEPyCore.db.migrations import run_env
from VEZEPyGame.db.models import Base

run_env(Base.metadata)
