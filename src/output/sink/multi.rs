use super::{Sink, SinkCounters};
use crate::output::OutputError;

/// Several outputs at once (`-o` given more than once). A closed stdout ends
/// only its own branch; another failing sink is reported after all were tried.
pub struct MultiSink {
    sinks: Vec<Option<Box<dyn Sink>>>,
    /// `lines_lost` of each closed branch, taken when it closed.
    lost_when_closed: Vec<u64>,
}

impl MultiSink {
    pub fn new(sinks: Vec<Box<dyn Sink>>) -> Self {
        Self {
            sinks: sinks.into_iter().map(Some).collect(),
            lost_when_closed: Vec::new(),
        }
    }

    fn each(
        &mut self,
        mut action: impl FnMut(&mut dyn Sink) -> Result<(), OutputError>,
    ) -> Result<(), OutputError> {
        let mut first_error = None;
        for slot in &mut self.sinks {
            let Some(sink) = slot else { continue };
            match action(sink.as_mut()) {
                Ok(()) => {}
                Err(OutputError::Closed) => {
                    self.lost_when_closed.push(sink.lines_lost());
                    *slot = None;
                }
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        if let Some(error) = first_error {
            return Err(error);
        }
        if self.sinks.iter().all(Option::is_none) {
            return Err(OutputError::Closed);
        }
        Ok(())
    }
}

impl Sink for MultiSink {
    fn write_line(&mut self, line: &[u8]) -> Result<(), OutputError> {
        self.each(|sink| sink.write_line(line))
    }

    fn flush(&mut self) -> Result<(), OutputError> {
        self.each(|sink| sink.flush())
    }

    fn reopen(&mut self) -> Result<(), OutputError> {
        self.each(|sink| sink.reopen())
    }

    fn close(&mut self) -> Result<(), OutputError> {
        self.each(|sink| sink.close())
    }

    /// Lost only once every branch closed; a line counts as lost when the
    /// branch that lost the fewest lost it (an estimate that never says more
    /// records were lost than were).
    fn lines_lost(&self) -> u64 {
        if self.sinks.iter().any(Option::is_some) {
            return 0;
        }
        self.lost_when_closed.iter().copied().min().unwrap_or(0)
    }

    fn counters(&self) -> SinkCounters {
        let mut total = SinkCounters::default();
        for sink in self.sinks.iter().flatten() {
            total.add(&sink.counters());
        }
        total
    }
}
