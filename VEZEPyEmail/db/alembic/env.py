from VEZEPyCore.db.migrations import run_env
from VEZEPyEmail.db.models import Base

run_env(Base.metadata)
