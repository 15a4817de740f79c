//! stackroll's vocabulary on the swarm, in one place below the planner, the executor and the
//! stack commands: the stack a deploy works on and how it scopes names (`namespace`), every
//! label stackroll writes or reads (`labels`), which objects are the versions of a key
//! (`versions`), Swarm's update states and how a rollout is judged (`rollout`), and the two
//! retries every writer shares (`retry`: while an object is still in use, and after "update
//! out of sequence"). It reads only the engine's types; nothing here plans or prints.

pub mod labels;
pub mod namespace;
pub mod retry;
pub mod rollout;
pub mod versions;
